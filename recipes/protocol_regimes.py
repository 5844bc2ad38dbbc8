"""`ProtocolRegimes`: the regimes of a recipe whose constructor built `self.protocol_table`.

A recipe mixes it in before `Recipe` and defines `make_optimizer(rate, regime)`, the optimizer
of its protocol at a learning rate (a number or a schedule); `regimes` maps the methods that do
not train in the "default" regime to theirs. The DoCL regime is the episode-tied cosine of the
`docl:*` rows (recipes/docl_protocol.py).
"""

from .docl_protocol import docl_arguments
from .docl_protocol import docl_regime


class ProtocolRegimes:
    regimes = {"docl": "docl"}

    def make_optimizer(self, rate, regime):
        raise NotImplementedError

    def regime_of(self, method):
        return self.regimes.get(method, super().regime_of(method))

    def regime(self, name, epochs):
        if name == "docl" and "docl" in self.regimes.values():
            return docl_regime(
                self.protocol_table, epochs, lambda rate: self.make_optimizer(rate, "docl")
            )
        return super().regime(name, epochs)

    def docl_arguments(self, epochs):
        return docl_arguments(self.protocol_table, epochs)

    def lerac_arguments(self):
        """`kc.LeRaC` arguments: the `lerac.*` rows, LeRaC's "epoch" being the share of an
        epoch between two of the authors' code's rate events (`lerac_events_per_epoch`, 1 if
        the protocol has no such row: e.g. 4 for the Tiny ImageNet and BoolQ code)."""
        table = self.protocol_table
        per_epoch = table.get("lerac_events_per_epoch", 1)
        return dict(
            table.section("lerac"), steps_per_epoch=max(1, self.steps_per_epoch // per_epoch)
        )
