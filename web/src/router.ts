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

export function startRouter(root: HTMLElement, views: Record<string, ViewFactory>, notFound: ViewFactory): void {
  let current: View | undefined;
  const render = () => {
    current?.destroy();
    const route = parseHash(location.hash);
    for (const a of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) {
      if (a.dataset.nav === route.name || (route.name === "job" && a.dataset.nav === "jobs") || (route.name === "trial" && a.dataset.nav === "jobs")) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    root.replaceChildren();
    current = (views[route.name] ?? notFound)(root, route.params);
    root.focus({ preventScroll: true });
  };
  window.addEventListener("hashchange", render);
  render();
}
