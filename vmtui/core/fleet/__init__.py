"""Several hosts in one list: the rows (:mod:`.model`) and actions on many
VMs at once (:mod:`.bulk`). Nothing here imports Textual."""
