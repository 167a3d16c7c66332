package org.ucx.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.List;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * HiveServer2 CUSTOM authentication for `ucx serve-sql --auth password`: a user name and
 * password checked against a file of PBKDF2-HMAC-SHA256 hashes (`ucx sql-user add`), one line per
 * user: {@code name:pbkdf2_sha256$iterations$salt_b64$hash_b64}. The files are named by the
 * environment variable UCX_SQL_USERS_FILE (paths separated by ':': the users of the warehouse's
 * _restricted folder, and the server's own one-time service user), owner-only, and read at every
 * login, so adding or removing a user needs no restart. Nothing is logged
 * about the password; a failed login says only that it failed.
 */
public class UcxPasswordAuthenticator implements PasswdAuthenticationProvider {

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String file = System.getenv("UCX_SQL_USERS_FILE");
    if (file == null || file.isEmpty()) {
      throw new AuthenticationException("no users file configured (UCX_SQL_USERS_FILE)");
    }
    if (user == null || password == null) {
      throw new AuthenticationException("login failed");
    }
    List<String> lines = new java.util.ArrayList<>();
    for (String one : file.split(java.io.File.pathSeparator)) {
      if (one.isEmpty() || !Files.isRegularFile(Paths.get(one))) {
        continue;
      }
      try {
        lines.addAll(Files.readAllLines(Paths.get(one), StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new AuthenticationException("a users file cannot be read");
      }
    }
    for (String line : lines) {
      int colon = line.indexOf(':');
      if (colon <= 0 || !line.substring(0, colon).equals(user)) {
        continue;
      }
      if (matches(line.substring(colon + 1).trim(), password)) {
        return;
      }
      break;
    }
    throw new AuthenticationException("login failed");
  }

  static boolean matches(String stored, String password) {
    String[] parts = stored.split("\\$");
    if (parts.length != 4 || !parts[0].equals("pbkdf2_sha256")) {
      return false;
    }
    try {
      int iterations = Integer.parseInt(parts[1]);
      byte[] salt = Base64.getDecoder().decode(parts[2]);
      byte[] expected = Base64.getDecoder().decode(parts[3]);
      PBEKeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, expected.length * 8);
      byte[] got = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
      return MessageDigest.isEqual(got, expected);
    } catch (Exception e) {
      return false;
    }
  }
}
