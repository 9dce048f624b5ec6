"""Thin nipype interfaces over aslmig's functions (the math lives elsewhere)."""
