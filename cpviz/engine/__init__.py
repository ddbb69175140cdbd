"""The engine: lab, probes, events and the Model. Nothing here imports Textual."""
