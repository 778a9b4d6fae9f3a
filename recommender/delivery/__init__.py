"""Delivering recommendations outside the web pages: private Atom feeds."""
