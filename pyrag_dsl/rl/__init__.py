"""RL fine-tuning with verl: rewards run by our engine, the four training sets, the GRPO + LoRA launch.

`pyrag_dsl.rl.rewards.compute_score` is verl's custom reward function; `data` builds the parquet sets;
`launch` builds the `verl.trainer.main_ppo` command of each curriculum stage; `merge` merges an adapter.
"""
