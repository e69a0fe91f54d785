"""Report rendering: CSV/XLSX exports and PNG charts."""
