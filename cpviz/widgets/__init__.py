"""cpviz's widgets: each draws one view of the Model and is fed by the app, never by the engine."""

from cpviz.widgets.blocking_alarm import BlockingAlarm
from cpviz.widgets.core_lanes import CoreLanes
from cpviz.widgets.help_screen import HelpScreen
from cpviz.widgets.measures import Measures
from cpviz.widgets.output_pane import OutputPane
from cpviz.widgets.run_panel import RunPanel, WorkloadChoice
from cpviz.widgets.timeline import Timeline
from cpviz.widgets.too_small import TooSmallScreen

__all__ = [
    "BlockingAlarm",
    "CoreLanes",
    "HelpScreen",
    "Measures",
    "OutputPane",
    "RunPanel",
    "Timeline",
    "TooSmallScreen",
    "WorkloadChoice",
]
