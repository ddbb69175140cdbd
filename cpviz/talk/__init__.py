"""Talk mode: a deck of scenes a speaker steps through with one key (no Textual below deck.py)."""
