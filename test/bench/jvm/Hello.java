// The bench's JVM app: a plain JDK HTTP server, as a small Java service would be (`java -jar hello.jar`).
//
//   start ──JVM boots, binds $PORT──▶ serving ──SIGTERM──▶ stopping (listener closed, in-flight requests finish,
//                                                          then the rest of STOP_DELAY_MS, 2 s by default) ──▶ exit
//
// GET /healthz answers 200 while serving, GET /slow?ms=N answers after N ms, GET / at once; every answer names the
// edition (FLEETWAVE_EDITION, else the edition.txt packed in the jar).
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

public final class Hello {
  private static volatile boolean stopping = false;

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(env("PORT", "8080"));
    long stopDelayMs = Long.parseLong(env("STOP_DELAY_MS", "2000"));
    String edition = env("FLEETWAVE_EDITION", packedEdition());
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 256);
    ExecutorService workers = Executors.newFixedThreadPool(64);
    server.setExecutor(workers);
    server.createContext("/", exchange -> handle(exchange, edition));
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      long began = System.currentTimeMillis();
      stopping = true;
      System.out.println("edition " + edition + ": stopping");
      // Stops accepting at once, then waits (up to 1 s) for the exchanges in flight, as a servlet container drains.
      server.stop(1);
      workers.shutdown();
      try {
        workers.awaitTermination(1, TimeUnit.SECONDS);
        // The rest of a JVM service's shutdown (closing pools, flushing caches): the stop takes STOP_DELAY_MS in all.
        long left = stopDelayMs - (System.currentTimeMillis() - began);
        if (left > 0) Thread.sleep(left);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      System.out.println("edition " + edition + ": stopped after " + (System.currentTimeMillis() - began) + " ms");
    }));
    server.start();
    System.out.println("edition " + edition + " listening on 127.0.0.1:" + port);
  }

  private static void handle(HttpExchange exchange, String edition) throws IOException {
    try (exchange) {
      String path = exchange.getRequestURI().getPath();
      String query = exchange.getRequestURI().getRawQuery();
      exchange.getRequestBody().readAllBytes();
      if (path.equals("/healthz")) {
        send(exchange, stopping ? 503 : 200, "{\"ok\":" + !stopping + ",\"edition\":\"" + edition + "\"}");
      } else if (path.equals("/slow")) {
        long ms = Math.min(param(query, "ms", 1000), 600_000);
        Thread.sleep(ms);
        send(exchange, 200, "{\"edition\":\"" + edition + "\",\"sleptMs\":" + ms + "}");
      } else if (path.equals("/")) {
        send(exchange, 200, "{\"edition\":\"" + edition + "\"}");
      } else {
        send(exchange, 404, "{\"error\":\"not found\"}");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void send(HttpExchange exchange, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  private static long param(String query, String name, long fallback) {
    if (query == null) return fallback;
    for (String pair : query.split("&")) {
      if (pair.startsWith(name + "=")) {
        try {
          return Long.parseLong(pair.substring(name.length() + 1));
        } catch (NumberFormatException e) {
          return fallback;
        }
      }
    }
    return fallback;
  }

  private static String env(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : value;
  }

  private static String packedEdition() {
    try (InputStream in = Hello.class.getResourceAsStream("/edition.txt")) {
      return in == null ? "unknown" : new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
    } catch (IOException e) {
      return "unknown";
    }
  }
}
