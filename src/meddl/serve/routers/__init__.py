"""One router per resource: health, models (metadata), predictions, and the clinicians' page."""
