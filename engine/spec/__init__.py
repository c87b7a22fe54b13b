"""Loading a vendor spec: YAML with positions, schema check, compilation into a frozen Spec."""
