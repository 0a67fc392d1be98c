"""Two people at once: the coupling measures, the dyad monitor, session, replay, report and view.
"""
