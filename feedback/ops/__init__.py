"""Running the app in production: health, metrics, logs and backups."""
