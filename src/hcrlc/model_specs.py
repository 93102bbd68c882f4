"""The one table of models: what each network is, how it trains, how it is chosen, shown and used.

Training (:mod:`hcrlc.training`), the networks (:func:`hcrlc.models.build_model`), the losses
(:func:`hcrlc.losses.make_weighting`), the tables and figures and the workflow (``workflow/rules/common.smk``)
all read a model's properties from :data:`MODELS` (and :data:`PRETEXT_SPEC` for the self-supervised pretext)
instead of testing its name. Paper §3 and the authors' code [A]:

=====================  =====================  ===============  ===============  ======================
model                  heads                  loss             weighting        best epoch chosen by
=====================  =====================  ===============  ===============  ======================
``lc_net``             logits                 BCE              —                validation micro-F1
``hcr_net``            recon                  CARL             —                validation PSNR
``hcr_lc_equal``       recon, logits          BCE + CARL       1:1              validation micro-F1
``hcr_lc_uncertain``   recon, logits          BCE + CARL       uncertainty      validation micro-F1
``hcr_c_net``          recon (frozen), logits BCE              —                validation micro-F1
``pretext``            logits (4 directions)  cross-entropy    —                validation accuracy
=====================  =====================  ===============  ===============  ======================

This module imports nothing heavy (no torch): the workflow reads it while Snakemake parses the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from hcrlc.errors import ConfigError
from hcrlc.paper import TABLE2

__all__ = [
    "BASELINE_LABELS",
    "CLASSIFIERS",
    "CLOUDY_INPUT",
    "CONSTANT_PREDICTION",
    "FIG3_MODELS",
    "LOGITS",
    "MODELS",
    "MODEL_LABELS",
    "MODEL_NAMES",
    "PRETEXT",
    "PRETEXT_SPEC",
    "RECON",
    "SSL_MODEL",
    "TRAINABLE",
    "ModelSpec",
    "model_spec",
]

#: Output keys of a network's ``forward``: the reconstruction ``(N, 13, H, W)`` and the class logits ``(N, C)``.
RECON = "recon"
LOGITS = "logits"


@dataclass(frozen=True)
class ModelSpec:
    """One trainable model.

    Attributes:
        name: the model's name in the config, the results' paths and the checkpoints.
        label: how the paper names it (Table 2 rows, figure legends).
        heads: the keys its network's ``forward`` returns (:data:`RECON`, :data:`LOGITS`).
        loss: the training loss terms: ``"bce"`` (classification), ``"carl"`` (reconstruction),
            ``"cross_entropy"`` (the pretext's one-of-4 direction).
        weighting: how two loss terms combine: ``"equal"`` or ``"uncertain"`` (:mod:`hcrlc.losses`); None
            for one term.
        selection_metric: the validation column whose maximum picks the best epoch.
        frozen_inside: the model whose trained ``best.pt`` this one freezes inside (``hcr_c_net``: its
            ``hcr_net``), trained first; None for a model built from scratch.
        network: the network :func:`hcrlc.models.build_model` builds (the pretext: an LC-Net's).
        table1_row: its row in Table 1 (parameter counts), None when the paper counts it in another row.
        target: what an item's ``y`` is: ``"labels"``, the ``(10,)`` multi-hot land cover; ``"direction"``,
            a 0-d int64 index of one of the pretext's 4 directions (:class:`~hcrlc.pretext.PretextDataset`).
    """

    name: str
    label: str
    heads: tuple[str, ...]
    loss: tuple[str, ...]
    weighting: str | None
    selection_metric: str
    frozen_inside: str | None = None
    network: str | None = None
    table1_row: str | None = None
    target: str = "labels"

    @property
    def network_name(self) -> str:
        return self.network or self.name

    @property
    def classifies(self) -> bool:
        return LOGITS in self.heads

    @property
    def reconstructs(self) -> bool:
        return RECON in self.heads

    @property
    def trains_reconstruction(self) -> bool:
        """Whether its reconstruction is trained by this model: validated by PSNR, and its image quality
        reported in Table 2 (``hcr_c_net``'s reconstruction is its frozen HCR-Net's, as in the paper)."""
        return "carl" in self.loss


_SPECS = (
    ModelSpec("lc_net", "LC-Net", (LOGITS,), ("bce",), None, "val_f1", table1_row="lc_net"),
    ModelSpec("hcr_net", "HCR-Net", (RECON,), ("carl",), None, "val_psnr"),
    # HCR&LC-Net 1:1 and uncertain share one architecture: Table 1 counts it once
    ModelSpec("hcr_lc_equal", "HCR&LC-Net 1:1", (RECON, LOGITS), ("bce", "carl"), "equal", "val_f1",
              table1_row="hcr_lc"),
    ModelSpec("hcr_lc_uncertain", "HCR&LC-Net uncertain", (RECON, LOGITS), ("bce", "carl"), "uncertain",
              "val_f1"),
    ModelSpec("hcr_c_net", "HCR-Net + C-Net", (RECON, LOGITS), ("bce",), None, "val_f1",
              frozen_inside="hcr_net", table1_row="hcr_c_net"),
)
#: The paper's five models by name, in the order of its Table 2.
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
if tuple(MODELS) != tuple(TABLE2):  # the paper's table and ours must list the same models in one order
    raise RuntimeError(f"hcrlc.model_specs lists {list(MODELS)}, hcrlc.paper.TABLE2 {list(TABLE2)}")
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
#: How the paper names each model (Table 2 rows, figure legends).
MODEL_LABELS: dict[str, str] = {name: spec.label for name, spec in MODELS.items()}
#: The models with a classification head, in :data:`MODEL_NAMES` order (evaluated for land cover).
CLASSIFIERS: tuple[str, ...] = tuple(name for name, spec in MODELS.items() if spec.classifies)

#: The models whose reconstructions the paper's Fig. 3 shows beside the cloudy input and the target.
FIG3_MODELS: tuple[str, ...] = ("hcr_net", "hcr_lc_uncertain")

#: The trivial baselines (:mod:`hcrlc.baselines` computes them): name -> how tables and figures label it. Here, not
#: there, so that tables and figures do not import the data stack (nor rerun when it changes).
CLOUDY_INPUT = "cloudy_input"
CONSTANT_PREDICTION = "constant_prediction"
BASELINE_LABELS: dict[str, str] = {
    CLOUDY_INPUT: "cloudy input (baseline)",
    CONSTANT_PREDICTION: "constant prediction (baseline)",
}

#: The self-supervised pretext task (paper §4), trained by the same loop as the five models.
PRETEXT = "pretext"
PRETEXT_SPEC = ModelSpec(PRETEXT, "pretext", (LOGITS,), ("cross_entropy",), None, "val_acc", network="lc_net",
                         target="direction")
#: Everything the training loop trains.
TRAINABLE: dict[str, ModelSpec] = {**MODELS, PRETEXT: PRETEXT_SPEC}
#: The model the self-supervised schedule (paper §4) trains in its stages: an HCR&LC-Net.
SSL_MODEL = "hcr_lc_uncertain"


def model_spec(name: str) -> ModelSpec:
    """The spec of trainable model ``name``; :class:`~hcrlc.errors.ConfigError` for an unknown name."""
    spec = TRAINABLE.get(name)
    if spec is None:
        raise ConfigError(f"unknown model {name!r}; choose one of {list(TRAINABLE)}")
    return spec
