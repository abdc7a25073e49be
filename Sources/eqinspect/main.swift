print("eqinspect: not yet")
