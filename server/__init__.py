"""ringrun.server: the job API (`ringrun serve`)."""
