"""English formats of the site."""
