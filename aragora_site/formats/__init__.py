"""Date and time formats of the site (``FORMAT_MODULE_PATH``): times to the second, ISO order."""
