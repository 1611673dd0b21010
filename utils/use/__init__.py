"""Using a model: photos and faces, prediction on any photo, interval and speed checks, saliency."""
