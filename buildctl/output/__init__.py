"""What people and CI systems see: the renderer, live progress, CI logging commands."""
