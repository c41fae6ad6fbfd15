// Produces records exactly as given, with Kafka's own Java client: an ordinary client other than
// the pipeline's (librdkafka), for tests that must not depend on how the project's producer
// writes messages. Run as a single-file program on the classpath of devstack's Kafka jars:
//
//   java -cp 'LIBS/*' RawProducer.java CLIENT.properties RECORDS
//
// CLIENT.properties holds the client configuration (bootstrap servers, SSL with PEM keys).
// RECORDS has one record per line: PARTITION<TAB>KEY<TAB>VALUE, key and value in base64
// ("-" for a null key). Prints "sent N" when every record is acknowledged; exits 1 otherwise.
import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class RawProducer {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        try (FileReader reader = new FileReader(args[0], StandardCharsets.UTF_8)) {
            config.load(reader);
        }
        Base64.Decoder base64 = Base64.getDecoder();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        String topic = config.getProperty("topic");
        config.remove("topic");
        try (KafkaProducer<byte[], byte[]> producer =
                 new KafkaProducer<>(config, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (String line : Files.readAllLines(Path.of(args[1]), StandardCharsets.US_ASCII)) {
                if (line.isEmpty()) {
                    continue;
                }
                String[] parts = line.split("\t", -1);
                byte[] key = parts[1].equals("-") ? null : base64.decode(parts[1]);
                byte[] value = base64.decode(parts[2]);
                sent.add(producer.send(new ProducerRecord<>(topic, Integer.parseInt(parts[0]), key, value)));
            }
            producer.flush();
            for (Future<RecordMetadata> result : sent) {
                result.get();
            }
        }
        System.out.println("sent " + sent.size());
    }
}
