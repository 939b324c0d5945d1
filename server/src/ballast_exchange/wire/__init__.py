"""What REST and the stream both speak: request models, numbers, views, the error envelope."""
