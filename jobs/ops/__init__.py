"""Operations: retention, OPTIMIZE, physical purge and VACUUM of every table."""
