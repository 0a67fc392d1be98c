"""What people see and hear: the participant view, the clinician's console, the terminal view,
stimuli and tones. Views read the pipeline's state; they never change processing.
"""
