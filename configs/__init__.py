"""The shipped board configs (TOML files). Data only: this file lets the wheel ship the folder as the
package ``neurofeed._configs`` (read with importlib.resources, see ``neurofeed/core/library.py``)."""
