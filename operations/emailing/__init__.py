"""Email to therapists and patients: rendering, queueing, transmission with smtplib."""
