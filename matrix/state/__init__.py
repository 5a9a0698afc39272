"""The connection-state profile (SPEC section 9): grids that one fresh handshake cannot show."""
