"""The pipeline and what runs it: observe → classify once → diff → execute → record."""
