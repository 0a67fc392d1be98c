"""The shipped protocol library (TOML files). Data only: this file lets the wheel ship the folder as the
package ``neurofeed._protocols`` (read with importlib.resources, see ``neurofeed/core/library.py``)."""
