docs = retrieve("Who directed Let Freedom Ring?")
director = answer("Who directed Let Freedom Ring?", docs.__class__)
year = answer(f"When was {directr} born?", docs)
final_answer = answer(f"{docs}")
