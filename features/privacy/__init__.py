"""Privacy: ``/forget``, retention, and the pasted-credential guard."""
