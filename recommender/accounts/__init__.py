"""Users and their libraries: the user store, password policy, login throttling."""
