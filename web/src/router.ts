// Hash routes: #/jobs, #/job?name=..., #/trial?path=..., #/compare?paths=a,b&jobs=x,y
export interface View {
  destroy(): void;
}

export type ViewFactory = (root: HTMLElement, params: URLSearchParams) => View;

export interface Route {
  name: string;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const body = hash.replace(/^#\/?/, "");
  const q = body.indexOf("?");
  const name = (q < 0 ? body : body.slice(0, q)) || "jobs";
  return { name, params: new URLSearchParams(q < 0 ? "" : body.slice(q + 1)) };
}

export function href(name: string, params: Record<string, string> = {}): string {
  const qs = new URLSearchParams(params).toString();
  return `#/${name}${qs ? `?${qs}` : ""}`;
}

export interface Router {
  /** Builds the current view again; `between` runs after the old view is gone (e.g. to reconnect). */
  restart(between?: () => void): void;
}

export function startRouter(root: HTMLElement, views: Record<string, ViewFactory>, notFound: ViewFactory): Router {
  let current: View | undefined;
  const render = (moveFocus: boolean, between?: () => void) => {
    current?.destroy();
    current = undefined;
    between?.();
    const route = parseHash(location.hash);
    for (const a of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) {
      if (a.dataset.nav === route.name || (route.name === "job" && a.dataset.nav === "jobs") || (route.name === "trial" && a.dataset.nav === "jobs")) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    root.replaceChildren();
    current = (views[route.name] ?? notFound)(root, route.params);
    // After navigating, a screen reader starts at the new page's title; a programmatic focus draws no ring (styles.css).
    if (moveFocus) {
      const title = root.querySelector<HTMLElement>("h1") ?? root;
      title.tabIndex = -1;
      title.focus({ preventScroll: true });
    }
  };
  window.addEventListener("hashchange", () => render(true));
  render(false);
  return { restart: (between) => render(false, between) };
}
