"""Label audit and curation: the data-centric loop (simulate → audit → relabel → curate), one module per step.

simulate      a labelling campaign on real images (K labelers, bad acquisitions) so an audit can be scored
agreement     Cohen's / Fleiss' kappa, Krippendorff's alpha, per-labeler confusion
consensus     majority vote (ties stay "ambiguous") and cleanlab's multi-annotator consensus
label_issues  out-of-fold probabilities by k-fold training + confident learning
quality       blur / exposure / cut-off / duplicate flags
review_queue  one ranked list of what to look at, within a relabel budget
label_studio  the queue as a Label Studio import (tasks with pre-annotations + labelling config)
defect_book   a draft definition of each class and of the confusable pairs
relabel       extra labels for queued items (simulated, CSV, Label Studio) → consensus
curate        consensus + clarified rule + removals → the next dataset version and its change log
audit         run_audit: everything above for one manifest, scored against gold when it is known
"""
