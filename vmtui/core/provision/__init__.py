"""Guest bootstrapping: cloud-init NoCloud seeds and Anaconda kickstarts."""
