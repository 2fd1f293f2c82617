"""skip_vae_tf: VAEs and generative skip models (Dieng et al., AISTATS 2019) in TF2/Keras/TFP."""
