"""Reading results: the HTML report of scored events and gradient attribution (explain)."""
