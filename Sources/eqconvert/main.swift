print("eqconvert: not yet")
