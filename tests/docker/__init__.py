"""Docker storage and the Docker agent against a real engine and a local registry."""
