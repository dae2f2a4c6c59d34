"""The dashboard's stylesheet: every text 14 px or more, fixed widths where content changes
(so nothing jumps while a fit runs), and the ipywidgets controls enlarged through their CSS
variables, scoped to ``.chimera-dashboard``."""

__all__ = ["CSS"]

CSS = r"""
.chimera-dashboard {
  --jp-widgets-font-size: 15px;
  --jp-widgets-inline-height: 32px;
  --jp-widgets-inline-label-width: 64px;
  max-width: 1500px;
}
.chimera-dashboard .widget-html-content { font-size: 15px; line-height: 1.35; }
.chimera-live { font-family: var(--jp-ui-font-family, sans-serif); font-size: 15px; color: #1d1d1d; }
.chimera-live .cl-status { font-size: 16px; padding: 4px 0 8px; font-variant-numeric: tabular-nums; min-height: 2.8em; }
.chimera-live .cl-num { display: inline-block; text-align: right; }
.chimera-live .cl-closed { color: #b00020; font-weight: 600; }
.chimera-live .cl-top { display: flex; flex-wrap: wrap; gap: 12px 22px; align-items: flex-start; }
.chimera-live .cl-flow { flex: 0 0 auto; width: 464px; }
.chimera-live .cl-banner { min-height: 42px; font-size: 14px; color: #444; font-style: italic; margin-bottom: 6px; }
.chimera-live .cl-cluster { flex: 1 1 400px; min-width: 400px; max-width: 640px; }
.chimera-live .chimera-flowchart-body { position: relative; }
.chimera-live .cl-arrows { position: absolute; left: 0; top: 0; }
.chimera-live .cl-route { fill: none; stroke: #666; stroke-width: 1.2; }
.chimera-live .cl-dashed { stroke-dasharray: 4 3; }
.chimera-live .cl-head { fill: #666; }
.chimera-live .cl-route-label { font-size: 14px; fill: #444; }
.chimera-live .chimera-step { position: absolute; box-sizing: border-box; background: #e8f0fe;
  border: 1px solid #7a8fb8; border-radius: 3px; padding: 0 4px; font-size: 14px; letter-spacing: -0.2px;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; color: #1d1d1d; }
.chimera-live .chimera-step.cl-side { background: #f2f2f2; }
.chimera-live .chimera-step b { margin-right: 2px; }
.chimera-live .chimera-step-visited { background: #ffe2b0; }
.chimera-live .chimera-step-active { background: #ffa500; border: 2px solid #b36b00; }
.chimera-live .cl-cluster-body { position: relative; }
.chimera-live .cl-links { position: absolute; left: 0; top: 0; }
.chimera-live .cl-link { stroke: #b9c2d3; stroke-width: 2.5; }
.chimera-live .cl-link[data-state="send"] { stroke: #1f77b4; stroke-width: 5; stroke-dasharray: 8 5; }
.chimera-live .cl-link[data-state="reply"] { stroke: #2ca02c; stroke-width: 5; }
.chimera-live .cl-link[data-state="fail"], .chimera-live .cl-link[data-state="failed"] { stroke: #d62728; stroke-dasharray: 3 4; }
.chimera-live .cl-link[data-state="last"] { stroke: #ff7f0e; stroke-width: 4; }
.chimera-live .cl-master { position: absolute; left: 0; width: 116px; height: 68px; box-sizing: border-box;
  border: 2px solid #4a5f8c; border-radius: 6px; background: #e8f0fe; text-align: center; padding-top: 10px; }
.chimera-live .cl-worker { position: absolute; height: 54px; box-sizing: border-box; border: 1.5px solid #7a8fb8;
  border-radius: 6px; background: #fff; padding: 3px 8px; overflow: hidden; white-space: nowrap; }
.chimera-live .cl-worker > div { overflow: hidden; text-overflow: ellipsis; }
.chimera-live .cl-worker[data-state="slow"] { background: #fff3d6; border-color: #d99a00; }
.chimera-live .cl-worker[data-state="suspect"] { background: #efe4f7; border-color: #9467bd; border-style: dashed; }
.chimera-live .cl-worker[data-state="failed"] { background: #fde2e2; border-color: #d62728; color: #6b1111; }
.chimera-live .cl-worker[data-state="stopped"] { background: #eeeeee; color: #555; }
.chimera-live .cl-worker[data-last="true"] { border: 2.5px solid #ff7f0e; }
.chimera-live .cl-worker[data-flash="reply"] { box-shadow: 0 0 0 3px #2ca02c inset; }
.chimera-live .cl-worker[data-flash="send"] { box-shadow: 0 0 0 3px #1f77b4 inset; }
.chimera-live .cl-crossed { position: absolute; left: 0; top: 0; pointer-events: none; display: none; }
.chimera-live .cl-worker[data-crossed="true"] .cl-crossed { display: block; }
.chimera-live .cl-cross { stroke: #d62728; stroke-width: 3; }
.chimera-live .cl-chip { font-size: 14px; padding: 0 6px; border-radius: 8px; background: #e3f2e3; }
.chimera-live .cl-chip[data-state="slow"] { background: #ffe1a8; }
.chimera-live .cl-chip[data-state="suspect"] { background: #d9c2ec; }
.chimera-live .cl-chip[data-state="failed"] { background: #f7b4b4; }
.chimera-live .cl-chip[data-state="stopped"], .chimera-live .cl-chip[data-state="unknown"] { background: #ddd; }
.chimera-live .cl-delay { color: #9a5b00; font-weight: 600; }
.chimera-live .cl-network { color: #1f5f99; font-weight: 600; }
.chimera-live .cl-ahead { color: #6a3d9a; }
.chimera-live .cl-dim { fill: #666; color: #666; }
.chimera-live .cl-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr));
  gap: 6px 18px; margin-top: 12px; }
.chimera-live .cl-panel { min-width: 0; }
.chimera-live svg text { font-size: 14px; fill: #222; }
.chimera-live svg text.cl-title { font-size: 15px; font-weight: 600; }
.chimera-live .cl-title-html { font-size: 15px; font-weight: 600; margin: 10px 0 2px; }
.chimera-live .cl-plot { fill: #fcfcfc; stroke: #999; }
.chimera-live .cl-grid { stroke: #e6e6e6; }
.chimera-live .cl-loss-line { fill: none; stroke: #1f77b4; stroke-width: 2.5; }
.chimera-live .cl-excess-line { fill: none; stroke: #9467bd; stroke-width: 2.5; }
.chimera-live .cl-round-line { fill: none; stroke: #8c564b; stroke-width: 1.8; }
.chimera-live [class$="-line-end"] { fill: #222; }
.chimera-live .cl-reference { stroke: #2ca02c; stroke-dasharray: 6 4; stroke-width: 1.5; }
.chimera-live .cl-mark { stroke-dasharray: 2 3; stroke-width: 1.5; }
.chimera-live svg text.cl-mark-text { fill: inherit; }
.chimera-live svg text.cl-empty { fill: #777; }
.chimera-live .cl-empty-html { color: #777; padding: 12px; }
.chimera-live .cl-whisker { stroke: #333; }
.chimera-live .cl-box-body { fill: #c6dbef; stroke: #333; }
.chimera-live .cl-median { stroke: #ff7f0e; stroke-width: 2.5; }
.chimera-live .cl-outlier { fill: none; stroke: #d62728; stroke-width: 1.5; }
.chimera-live .cl-timeline-row { display: flex; }
.chimera-live .cl-lane-names { flex: 0 0 104px; font-size: 14px; }
.chimera-live .cl-lane-head { color: #666; height: 22px; }
.chimera-live .cl-lane { line-height: 30px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.chimera-live .cl-timeline-scroll { flex: 1 1 auto; overflow-x: auto; min-width: 0; }
.chimera-live .cl-lane-even { fill: #f7f7f7; }
.chimera-live .cl-lane-odd { fill: #ffffff; }
.chimera-live .cl-call { fill: #1f77b4; }
.chimera-live .cl-call-failed { fill: #d62728; }
.chimera-live .cl-wait { fill: #d9d9d9; }
.chimera-live .cl-barrier { stroke: #888; stroke-dasharray: 2 3; }
.chimera-messages { font-size: 15px; }
.chimera-messages .cl-placeholder { color: #777; font-style: italic; white-space: normal; }
.chimera-messages .chimera-message { padding: 1px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.chimera-messages .chimera-message[data-kind="error"] { color: #b00020; }
"""
