"""What the terminal shows and what text formats hold: rich tables, JSON/CSV/Markdown, units."""
