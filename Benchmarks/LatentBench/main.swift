print("latent-bench")
