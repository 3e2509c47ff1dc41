"""callguard: is the number calling me a reported scam number?"""
