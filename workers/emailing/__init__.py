"""Email to therapists and patients: signed tokens, rendering, SMTP transmission."""
