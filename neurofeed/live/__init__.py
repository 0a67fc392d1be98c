"""The live session: the Processor and Pipeline (source -> chain -> engine -> feedback record),
session assembly, sham yoking and the LSL outlets.
"""
