"""Teaching: the GAN game in one dimension (:mod:`.intuition`) and the workshop preset judged
against the clock (:mod:`.workshop`)."""
