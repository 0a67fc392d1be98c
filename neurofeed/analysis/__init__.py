"""Research use of recordings: replay of EDF/BDF files and session journals through the live
code, and the reports (ERD/ERS, epochs, figures).
"""
