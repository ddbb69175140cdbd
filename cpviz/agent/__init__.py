"""What runs inside the observed process: the lab, the tracer, the watchdog, the no-progress
detector and the agent end of the channel. Never imports Textual."""
