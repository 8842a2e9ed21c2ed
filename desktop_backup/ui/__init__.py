"""The console window: PySide6 widgets, models and QThread workers; no SQL here."""
