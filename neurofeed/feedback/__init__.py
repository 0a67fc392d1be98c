"""What the participant and the clinician see: display, terminal view, LSL outlets."""
