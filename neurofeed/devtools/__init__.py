"""Development tools, imported only by the command line: the Cyton and Muse emulators and the
benchmarks.
"""
