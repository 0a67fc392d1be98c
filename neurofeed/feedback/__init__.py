"""What the participant and the clinician see: FeedbackState, display, terminal view, LSL outlets."""
