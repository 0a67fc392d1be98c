"""Where the signal comes from: sources (BrainFlow, LSL, EDF/BDF files, the simulated headset),
board configs, montages and the pre-session signal check.
"""
